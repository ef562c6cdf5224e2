DROP TABLE applications;
DROP TABLE financing_programmes;
