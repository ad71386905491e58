from sb3_rtrl.zoo import main

main()
