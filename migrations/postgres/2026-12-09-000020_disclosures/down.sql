DROP TABLE disclosed_persons;
DROP TABLE disclosures;
