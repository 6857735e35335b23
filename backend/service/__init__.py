"""`enliven serve`: the backend behind one ZeroMQ ROUTER socket.

Modules, and who may touch what:

* ``router``    the only code that touches the ROUTER socket: receives, sends,
                per-client backlogs (flow control) and the peer table;
* ``server``    puts the parts together; decodes each request and hands it to
                a control handler or to its job kind's admission check;
* ``control``   hello, ping, status, cancel, shutdown: answered at once by the
                socket thread, whatever is running;
* ``scheduler`` the lanes (interactive, heavy, training), queue positions and a
                job's window of unsent messages; ``jobs`` the records;
* ``paths``     which client-named files a server may read and write;
* ``subjects``  analysed photos and prepared engines, cached;
* ``frames``    encoding frames and writing PNG sequences;
* ``admission`` checks several job kinds share; ``replies`` final replies they share;
* one module per job kind (``analyze``, ``preview``, ``generate``,
  ``capture``, ``lipsync``, ``talk``, ``train``), each with ``admit(server, job)`` and
  ``run(server, job)``, and ``kinds.JOB_KINDS``, the table of them that the
  server and the scheduler read (they never branch on a kind's name);
* ``keys``      loopback endpoints and CurveZMQ keys; ``commands`` the CLI.

Threads: the socket thread (the caller of :func:`serve`) runs the router, the
control requests and every admission check; each job runs on a thread of its
own once its lane has a slot for it; a small pool encodes frames so PNG
compression overlaps rendering.

Adding a job kind ``foo``:

1. the request's fields and parts in ``shared/schema.py`` (``REQUESTS``), its
   name in ``shared/protocol.py``'s ``REQUEST_TYPES``, and a ``Client.foo`` in
   ``shared/client.py``;
2. ``service/foo.py`` with ``admit(server, job) -> bool`` (check what can be
   checked now, fill in ``job.total``/``job.output_key``, call
   ``admission.check_room``; False if it answered the request itself) and
   ``run(server, job) -> list`` (the final reply's frames; progress through
   ``server.scheduler.emit`` or ``progress_reporter``);
3. one row in ``kinds.JOB_KINDS``: ``JobKind("foo", HEAVY, foo.admit, foo.run)``.
"""
