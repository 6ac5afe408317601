"""Fleets: vkdoctor's side of the engines that run it on many machines.

``state`` reduces a report to what a fleet engine acts on (healthy or not, the root cause's
code and culprit, whether vkdoctor could decide at all); ``prometheus`` writes it for
node_exporter's textfile collector; ``npd`` speaks node-problem-detector's custom-plugin
protocol; ``options`` is the command-line side shared by ``check`` and ``kernels``.

Headless: no rich/textual.  Nothing here starts a process or touches Vulkan.
"""
