from sb3_rtrl.cli import main

main()
