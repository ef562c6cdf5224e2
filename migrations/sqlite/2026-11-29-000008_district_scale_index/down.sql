DROP INDEX businesses_district_scale;
