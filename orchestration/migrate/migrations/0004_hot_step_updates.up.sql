-- Let most updates of a step be HOT (heap-only tuple) updates. A step's row is
-- written four or five times in its life within milliseconds; an update that
-- changes no indexed column, and finds room on its page, adds no index
-- entries and leaves no dead version for index scans to step over.
--
-- The sweeper's partial indexes named state in their predicates, which made
-- every state change touch an indexed column. They now hold exactly the rows
-- whose timestamp is set: next_retry_at is set only while a step waits for a
-- retry, claim_expires_at only while it is claimed, so they find the same
-- rows, and enqueuing, completing or releasing a step changes neither.
DROP INDEX tasker.workflow_steps_retry_due_idx;
DROP INDEX tasker.workflow_steps_claim_expiry_idx;
CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps (next_retry_at)
    WHERE next_retry_at IS NOT NULL;
CREATE INDEX workflow_steps_claim_expiry_idx ON tasker.workflow_steps (claim_expires_at)
    WHERE claim_expires_at IS NOT NULL;

-- Room on each page for the new versions of its rows (applies to pages
-- written from now on).
ALTER TABLE tasker.workflow_steps SET (fillfactor = 70);
ALTER TABLE tasker.tasks SET (fillfactor = 80);

-- The transition history is append-only and read by task
-- (step_transitions_task_idx). Its foreign key to the step made every
-- transition lock the step's row (FOR KEY SHARE) and its index by step was
-- one more index to write per transition; neither served a query. Deleting
-- a task (nothing does today) must delete its step transitions itself.
ALTER TABLE tasker.step_transitions DROP CONSTRAINT step_transitions_step_uuid_fkey;
DROP INDEX tasker.step_transitions_step_idx;
