CREATE TABLE disclosed_persons (
    person_id BIGINT NOT NULL,
    disclosure_id BIGINT NOT NULL,
    PRIMARY KEY (person_id, disclosure_id)
);
INSERT INTO disclosed_persons (person_id, disclosure_id)
SELECT DISTINCT p, id FROM disclosures, unnest(string_to_array(persons, ',')::bigint[]) AS p;
DROP INDEX disclosures_persons;
