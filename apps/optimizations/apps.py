from django.apps import AppConfig


class OptimizationsConfig(AppConfig):
    name = "apps.optimizations"
    label = "optimizations"
    verbose_name = "Optimisations"
