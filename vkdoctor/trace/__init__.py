"""``vkdoctor trace``: run a program and diagnose what happens to its Vulkan libraries.

Modules: ``events`` (the JSON-lines trace), ``manifest`` (the layer manifest and environment),
``launch`` (starting the program), ``poll`` (the /proc/PID/maps fallback), ``session`` (one
traced run), ``analysis`` (events -> findings, with the CODES table) and ``command`` (the CLI
arguments and the Report).  The native parts live in ``vkdoctor/native/``.
"""
