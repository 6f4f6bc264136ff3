// pvscope CLI entry point (filled in by the Xen model work).
process.stderr.write('pvscope: not built yet\n');
process.exit(2);
