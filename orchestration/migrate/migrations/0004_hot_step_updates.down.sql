CREATE INDEX step_transitions_step_idx ON tasker.step_transitions (step_uuid, id);
ALTER TABLE tasker.step_transitions ADD CONSTRAINT step_transitions_step_uuid_fkey
    FOREIGN KEY (step_uuid) REFERENCES tasker.workflow_steps (step_uuid) ON DELETE CASCADE;
ALTER TABLE tasker.tasks RESET (fillfactor);
ALTER TABLE tasker.workflow_steps RESET (fillfactor);
DROP INDEX tasker.workflow_steps_claim_expiry_idx;
DROP INDEX tasker.workflow_steps_retry_due_idx;
CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps (next_retry_at)
    WHERE state = 'waiting_for_retry';
CREATE INDEX workflow_steps_claim_expiry_idx ON tasker.workflow_steps (claim_expires_at)
    WHERE state = 'in_progress';
