"""The games catalogue: games_config (schema, fetch, publish to S3 + CloudFront), the game page and the lobby."""
