from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Data flows"

    def ready(self):
        from audit import leaves

        from .leaves import flow_leaves

        leaves.register("flows", flow_leaves)

