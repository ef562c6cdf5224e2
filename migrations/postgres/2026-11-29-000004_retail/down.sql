DROP TABLE placements;
DROP TABLE curations;
DROP TABLE outlets;
