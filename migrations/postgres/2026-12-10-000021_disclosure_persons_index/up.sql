-- A person's trail through an inverted index of the entries' persons instead of a row per
-- person per entry (issue 30's cost bounds): a list page of 50 owners wrote 50 rows and index
-- entries, about 8 µs of the database's CPU each; a GIN index takes an entry's persons into its
-- pending list in one piece (about 2 µs a person) and merges them in bulk later.
CREATE INDEX disclosures_persons ON disclosures
    USING gin ((string_to_array(persons, ',')::bigint[]));
DROP TABLE disclosed_persons;
