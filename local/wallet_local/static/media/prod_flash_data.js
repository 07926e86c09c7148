// Stand-in for the provider's prod_flash_data.js (local stack only): marks that the asset path served it.
window.prodFlashDataLoaded = true;
