-- The steps' foreign key to their task goes, as the history's and the
-- edges' did in 0004 and 0005. Steps are inserted only by the statements
-- that create their task (orchestration/create_insert.go), in the same
-- statement, so the key never caught anything; but each step inserted ran
-- the key's check, a trigger that looks the task up and locks its row FOR
-- KEY SHARE: four checks for a diamond task, about 8 % of PostgreSQL's
-- CPU per step in make profile. Deleting a task must now delete its steps
-- itself, as it already had to delete its history and edges
-- (docs/operations.md, Retention).
ALTER TABLE tasker.workflow_steps DROP CONSTRAINT workflow_steps_task_uuid_fkey;
