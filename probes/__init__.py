"""The pipeline's probes, one module per stage (installed as ``vkdoctor.probes``)."""
