INSERT INTO users (user_name) VALUES ('bench-' || gen_random_uuid() || '@example.com');
