DROP TABLE tasker.workers;
