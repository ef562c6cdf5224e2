DROP TABLE login_failures;
DROP TABLE users;
DROP TABLE retail_partners;
DROP TABLE bank_partners;
DROP TABLE regions;
