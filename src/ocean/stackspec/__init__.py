"""The stack spec: the stack as it should run, whatever runs it (issue 23).

What both runtimes (and validation) read, so no one builds an adapter to render a file:
- ``spec.StackSpec``: where each service is (URLs, ports, sockets, credentials) and
  which shop build each color runs, over the settings, the secrets and a binary lookup
  the caller supplies;
- ``programs``: the program table (argv, environment, user, stop signal of each service);
- ``context``: the template context, with the credential and alerting files it names;
- ``configs``: the service configs rendered into the state dir, the upstream and the
  shop's scrape targets;
- ``sockets``, ``accounts``, ``search_path``: the scrape sockets' paths, who runs as
  whom, where the stack's programs are found.

Nothing here starts or stops anything: supervisord (runtime/local.py) and Compose
(runtime/compose.py) do, from this description.
"""
