from hashwatch.cli import main

main()
