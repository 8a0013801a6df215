from giga_netcheck.cli.main import main

main()
