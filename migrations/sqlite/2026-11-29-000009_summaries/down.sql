DROP TABLE summary_members;
DROP TABLE summary_counts_delta;
DROP TABLE summary_counts;
DROP TABLE summary_applications_delta;
DROP TABLE summary_applications;
DROP TABLE summary_business_rollups;
DROP TABLE summary_businesses_delta;
DROP TABLE summary_businesses;
