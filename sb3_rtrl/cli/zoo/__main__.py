from sb3_rtrl.cli.zoo import main

main()
