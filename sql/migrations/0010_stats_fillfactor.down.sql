ALTER TABLE link_daily RESET (fillfactor);
ALTER TABLE clicks_hourly RESET (fillfactor);
