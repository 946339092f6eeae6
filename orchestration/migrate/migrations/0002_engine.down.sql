SELECT pgmq.drop_queue(queue_name)
FROM pgmq.list_queues()
WHERE queue_name IN ('orchestration_step_results', 'orchestration_task_requests')
   OR queue_name IN (SELECT n.queue_name FROM tasker.namespaces n);

DROP TABLE tasker.dead_letters;
DROP TABLE tasker.step_transitions;
DROP TABLE tasker.task_transitions;
DROP TABLE tasker.workflow_step_edges;
DROP TABLE tasker.workflow_steps;
DROP TABLE tasker.tasks;
DROP TABLE tasker.template_edges;
DROP TABLE tasker.template_steps;
DROP TABLE tasker.templates;
DROP TABLE tasker.namespaces;
