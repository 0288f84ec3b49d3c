"""The GATE Cloud-compatible job API (`/api/job`, `/api/data`) on Conveyor's core: each job's
configuration is a document of its own, and each run of it a job of the core under the same
id (one `gate:annotate` task), so workers, logs and tenancy are the core's."""
