DROP TABLE registrations;
DROP TABLE trainings;
