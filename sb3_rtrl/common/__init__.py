"""What every algorithm of sb3-rtrl shares: argument checks and the detection of non-finite values."""
