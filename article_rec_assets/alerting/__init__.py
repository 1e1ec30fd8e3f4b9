"""What an on-call person is sent: failed checks grouped into incidents (plain functions; the
sensors in `article_rec_assets.sensors` feed them Dagster's check records and post the result)."""
