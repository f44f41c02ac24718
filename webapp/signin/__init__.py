"""Sign-in with the company directory: LDAP and OpenID Connect (docs/auth.md)."""
