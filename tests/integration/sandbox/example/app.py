"""A tiny function for the CLI tests (the project's examples/ import the tracer; this one imports nothing)."""


def handler(event, context):
    print(f"greeting {event.get('name', 'world')}")
    return {"statusCode": 200, "body": f"hello, {event.get('name', 'world')}"}


def broken(event, context):
    raise RuntimeError("no greeting today")
