"""Every provider test that uses a tenants file of its own forgets it afterwards."""
from .channels import own_tenants_forgotten  # noqa: F401  (an autouse fixture)
