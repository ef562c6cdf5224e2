DROP TABLE bank_feed_clocks;
DROP TABLE bank_feed;
