-- The queries demo v1 runs (examples/demo/api.py): `db rehearse` runs each against the new schema,
-- so a migration that breaks the running version fails the rehearsal. One statement per line.
SELECT id, name, points FROM demo.items ORDER BY id LIMIT 50;
SELECT name, points FROM demo.items ORDER BY points DESC LIMIT 5;
INSERT INTO demo.items (name, points) VALUES ('rehearsal', 1) RETURNING id;
