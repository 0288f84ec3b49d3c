"""The scheduler: owns every job and task state change after the gateway created the job."""
