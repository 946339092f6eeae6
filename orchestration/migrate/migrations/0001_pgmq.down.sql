-- Removes the queue layer, whichever way 0001 installed it: the pgmq
-- extension, or the bundled functions and tables in schema pgmq.
DROP EXTENSION IF EXISTS pgmq CASCADE;
DROP SCHEMA IF EXISTS pgmq CASCADE;
