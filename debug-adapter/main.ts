// Debug adapter entry point (filled in by the debug adapter work).
process.stderr.write('pvscope debug adapter: not built yet\n');
process.exit(1);
