"""Everything that writes payments. Views, jobs, admin actions and consumers call these; nothing else
writes a payment's status."""
