import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import selectors
from audit.selectors import verify_chain
from audit.verification import verify_export

FINGERPRINT = re.compile(r"[0-9a-f]{64}")


class Command(BaseCommand):
    help = ("Recompute the audit chain of one or every organization (or of an export, without the database). "
            "Exits non-zero when a chain is invalid, naming the first invalid seq.")

    def add_arguments(self, parser):
        parser.add_argument("--org", help="An organization's slug (default: every organization).")
        parser.add_argument("--jobs", type=int, default=1, metavar="N",
                            help="Recompute the Merkle log's segments in N processes (PostgreSQL; default 1).")
        parser.add_argument("--export", type=Path, help="Verify an export directory written by export_audit.")
        parser.add_argument("--trusted-key", action="append", dest="trusted_keys", metavar="FINGERPRINT",
                            help="With --export: the SHA-256 fingerprint of a signing key, obtained apart from the "
                                 "export. Repeat it for rotated keys. Digests signed by any other key are refused.")

    def handle(self, *args, org=None, export=None, trusted_keys=None, jobs=1, **options):
        if not 1 <= jobs <= 64:
            raise CommandError("--jobs takes 1 to 64.")
        trusted = self.fingerprints(trusted_keys) if trusted_keys else None
        if trusted is not None and export is None:
            raise CommandError("--trusted-key applies to --export.")
        if export is not None:
            if trusted is None:
                self.stderr.write(f"warning: {export}: the signing keys were read from the export's own "
                                  "public_keys.json, which proves nothing by itself: anyone able to rewrite the export "
                                  "can re-sign it with a key of their own. Give the fingerprints you obtained "
                                  "separately with --trusted-key.")
            results = [(str(export), verify_export(export, trusted_keys=trusted))]
        else:
            organizations = selectors.organizations().order_by("slug")
            if org:
                organizations = organizations.filter(slug=org)
                if not organizations.exists():
                    raise CommandError(f"No organization '{org}'.")
            results = [(o.slug, verify_chain(o, jobs=jobs)) for o in organizations]
        invalid = []
        for name, result in results:
            if result.valid:
                tree = (f"; {result.leaves_checked} leaves, tree size {result.tree_size} root {result.root_hash}"
                        if result.leaves_checked else "")
                self.stdout.write(f"{name}: valid, {result.events_checked} events checked, head seq "
                                  f"{result.head_seq} {result.head_hash}{tree}")
            else:
                invalid.append(name)
                where = (f"seq {result.first_invalid_seq}" if result.first_invalid_leaf is None
                         else f"leaf {result.first_invalid_leaf}")
                self.stdout.write(f"{name}: INVALID at {where}: {result.problem} "
                                  f"({result.events_checked} events checked before it)")
        if invalid:
            raise CommandError(f"invalid chain: {', '.join(invalid)}")

    def fingerprints(self, values: list[str]) -> set[str]:
        fingerprints = {value.strip().lower().replace(":", "") for value in values}
        malformed = sorted(f for f in fingerprints if not FINGERPRINT.fullmatch(f))
        if malformed:
            raise CommandError(f"--trusted-key takes a key's SHA-256 fingerprint, 64 hex digits: {malformed[0]!r}")
        return fingerprints
