print("svi")
