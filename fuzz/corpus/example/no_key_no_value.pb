



	
novalue