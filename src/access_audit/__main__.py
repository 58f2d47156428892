from access_audit.cli import main

main()
