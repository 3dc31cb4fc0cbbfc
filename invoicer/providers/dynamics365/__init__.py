"""Microsoft Dynamics 365: Business Central (API v2.0) and Finance & Operations (OData entities)."""
