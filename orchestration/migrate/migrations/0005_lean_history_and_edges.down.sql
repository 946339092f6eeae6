ALTER TABLE tasker.workflow_step_edges ADD CONSTRAINT workflow_step_edges_task_uuid_fkey
    FOREIGN KEY (task_uuid) REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE;
ALTER TABLE tasker.task_transitions ADD CONSTRAINT task_transitions_task_uuid_fkey
    FOREIGN KEY (task_uuid) REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE;
ALTER TABLE tasker.workflow_step_edges DROP CONSTRAINT workflow_step_edges_pkey;
ALTER TABLE tasker.workflow_step_edges ADD PRIMARY KEY (from_step_uuid, to_step_uuid);
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid);
CREATE INDEX workflow_step_edges_task_idx ON tasker.workflow_step_edges (task_uuid);

ALTER TABLE tasker.task_transitions DROP CONSTRAINT task_transitions_pkey;
ALTER TABLE tasker.task_transitions ADD PRIMARY KEY (id);
CREATE INDEX task_transitions_task_idx ON tasker.task_transitions (task_uuid, id);

ALTER TABLE tasker.step_transitions DROP CONSTRAINT step_transitions_pkey;
ALTER TABLE tasker.step_transitions ADD PRIMARY KEY (id);
CREATE INDEX step_transitions_task_idx ON tasker.step_transitions (task_uuid, id);
