from hashwatch._entry import main

main()
