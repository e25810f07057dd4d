"""The queue's ceiling (scenario 4): a job that does nothing, run by the same worker class from the same queue."""


def noop_job(object_id: str) -> str:
    return object_id
