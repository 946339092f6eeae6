-- Less work per row written. Every step writes five step transitions, a
-- quarter of a task's five task transitions and about one edge; each index
-- on those tables is one more B-tree insertion (and WAL record) per row,
-- and each foreign key one more lookup of the task (a trigger running a
-- query) per row. Nothing reads these tables except by task, so each keeps
-- one index that starts with task_uuid.
--
-- The transition tables: the primary key becomes (task_uuid, id), which is
-- what the by-task index held; id alone stays unique (it is an identity).
ALTER TABLE tasker.step_transitions DROP CONSTRAINT step_transitions_pkey;
DROP INDEX tasker.step_transitions_task_idx;
ALTER TABLE tasker.step_transitions ADD PRIMARY KEY (task_uuid, id);

ALTER TABLE tasker.task_transitions DROP CONSTRAINT task_transitions_pkey;
DROP INDEX tasker.task_transitions_task_idx;
ALTER TABLE tasker.task_transitions ADD PRIMARY KEY (task_uuid, id);

-- The foreign keys of task transitions and edges go, as 0004 did for step
-- transitions: both are written only by statements that insert or lock
-- their task (edges only by the statement that creates it), and a task's
-- creation checked the task for each of them, eight of its thirteen checks.
-- workflow_steps keeps its key. Deleting a task (nothing does today) must
-- delete its transitions and edges itself.
ALTER TABLE tasker.task_transitions DROP CONSTRAINT task_transitions_task_uuid_fkey;

-- Edges are read by task (the claim loads a task's edges to find a step's
-- ancestors), by task and parent (completing a step releases its children)
-- and by task and child (a step's parents): one primary key on (task_uuid,
-- from_step_uuid, to_step_uuid) serves the first two directly and the third
-- by scanning the task's few edges. An edge still cannot be stored twice.
ALTER TABLE tasker.workflow_step_edges DROP CONSTRAINT workflow_step_edges_pkey;
DROP INDEX tasker.workflow_step_edges_to_idx;
DROP INDEX tasker.workflow_step_edges_task_idx;
ALTER TABLE tasker.workflow_step_edges ADD PRIMARY KEY (task_uuid, from_step_uuid, to_step_uuid);
ALTER TABLE tasker.workflow_step_edges DROP CONSTRAINT workflow_step_edges_task_uuid_fkey;
