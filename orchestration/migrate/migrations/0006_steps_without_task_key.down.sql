-- Steps whose task is gone (deleted without its steps) would make the key
-- fail to validate: they go first.
DELETE FROM tasker.workflow_steps s
WHERE NOT EXISTS (SELECT FROM tasker.tasks t WHERE t.task_uuid = s.task_uuid);
ALTER TABLE tasker.workflow_steps ADD CONSTRAINT workflow_steps_task_uuid_fkey
    FOREIGN KEY (task_uuid) REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE;
