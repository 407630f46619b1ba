from odh_spawner.platform.app import main

main()
