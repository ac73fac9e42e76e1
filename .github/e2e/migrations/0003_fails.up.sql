-- Fails on purpose (division by zero, SQLSTATE 22012): rollgate exits 6 and rolls the
-- transaction back, so neither the table nor a history row for version 3 may remain.
CREATE TABLE doomed (id int);
SELECT 1 / 0;
