"""`conveyor publish JOB.json --organization-id ID`: what an internal producer does, from the
command line. The job goes straight onto RabbitMQ as `job.submitted` (no HTTP); the scheduler
validates it again and creates the job document."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shared.broker import Publisher, open_amqp
from shared.errors import ConveyorError
from shared.jobs import new_job_id
from shared.jobspec import read_job_file
from shared.messages import JobSubmitted
from shared.runtime import topology_for
from shared.settings import Settings
from shared.topology import JOBS_EXCHANGE
from shared.validation import InvalidJob, validate_job


async def publish_job(settings: Settings, message: JobSubmitted) -> None:
    async with open_amqp(settings, "conveyor-publish") as connection:
        topology = topology_for(settings)
        publisher = await Publisher.open(connection, topology)
        try:
            await topology.declare(publisher.channel)
            await publisher.publish(JOBS_EXCHANGE, "job.submitted", message)
        finally:
            await publisher.close()


def main(settings: Settings, job_file: Path, organization_id: str, user_id: str | None) -> int:
    """Prints the job id on success; one line per problem on stderr otherwise."""
    try:
        spec = validate_job(read_job_file(job_file), settings.regions)
    except InvalidJob as exc:
        for error in exc.errors:
            print(f"conveyor: {job_file}: {error['field']}: {error['message']}", file=sys.stderr)
        return 2
    except ConveyorError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return 2
    message = JobSubmitted(job_id=new_job_id(), spec=spec, organization_id=organization_id,
                           user_id=user_id)
    try:
        asyncio.run(publish_job(settings, message))
    except ConveyorError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return 1
    print(message.job_id)
    return 0
